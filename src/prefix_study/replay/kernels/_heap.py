"""An indexed binary min-heap over block ids, for priority-based kernels.

Each id has a primary key (float64) and a tie-break key (int64, usually the
time of the last access): the heap's top is the id with the smallest
(primary, tie-break). `where[id]` is the id's slot in the heap, -1 if absent,
so a key can change in O(log n) without lazy deletion.
"""

from __future__ import annotations

from prefix_study.replay.kernels._common import jit


@jit
def _less(k1, k2, a, b):
    return k1[a] < k1[b] or (k1[a] == k1[b] and k2[a] < k2[b])


@jit
def _swap(heap, where, i, j):
    a = heap[i]
    b = heap[j]
    heap[i] = b
    heap[j] = a
    where[b] = i
    where[a] = j


@jit
def sift_up(heap, where, k1, k2, i):
    while i > 0:
        p = (i - 1) >> 1
        if _less(k1, k2, heap[i], heap[p]):
            _swap(heap, where, i, p)
            i = p
        else:
            break


@jit
def sift_down(heap, where, k1, k2, size, i):
    while True:
        l = 2 * i + 1
        if l >= size:
            break
        m = l
        r = l + 1
        if r < size and _less(k1, k2, heap[r], heap[l]):
            m = r
        if _less(k1, k2, heap[m], heap[i]):
            _swap(heap, where, i, m)
            i = m
        else:
            break


@jit
def heap_push(heap, where, k1, k2, size, x):
    """Insert id x (keys already set in k1/k2); returns the new size."""
    heap[size] = x
    where[x] = size
    sift_up(heap, where, k1, k2, size)
    return size + 1


@jit
def heap_remove(heap, where, k1, k2, size, x):
    """Remove id x (must be present); returns the new size."""
    i = where[x]
    size -= 1
    where[x] = -1
    if i != size:
        y = heap[size]
        heap[i] = y
        where[y] = i
        sift_up(heap, where, k1, k2, i)
        sift_down(heap, where, k1, k2, size, where[y])
    return size


@jit
def heap_update(heap, where, k1, k2, size, x):
    """Restore heap order after x's keys changed (x present)."""
    i = where[x]
    sift_up(heap, where, k1, k2, i)
    sift_down(heap, where, k1, k2, size, where[x])
