"""``StreamBuffer``: the ``buffer`` package's class (PyPI ``buffer`` 0.2.1), on a
``StreamCache``.

Same constructor and methods: ``StreamBuffer(stream, size=None, max_size=5 * 1024 * 1024)``,
``read(offset, size)``, ``buffer[a:b]`` and ``buffer[(a, b)]`` (``bytes``), ``is_exhausted()``.
The differences: the stream is read by a background thread (reads of different parts run in
parallel, without one lock), and a read that skips ahead returns the bytes at its offset (the
old package returns the start of the chunk that holds the offset).
"""

from ._cache import StreamCache

MAX_SIZE = 5 * 1_024 * 1_024  # bytes
INDEX_SIZE = 2
GETITEM_ERR = f"Expected a collection with a length of {INDEX_SIZE} or a slice object."


class StreamBuffer:
    """A random-access buffer over a stream of chunks (or bytes, or a binary file).

    ``size`` is the stream's length if known (a Content-Length; only a hint), ``max_size``
    how much of it stays in memory before the rest goes to a temporary file.
    """

    def __init__(self, stream, size=None, max_size=MAX_SIZE):
        self.stream = stream
        self.size = size
        self.max_size = max_size
        self.cache = StreamCache(stream, memory_limit=max_size, expected_len=size)
        # How far reads have gone: `is_exhausted` asks whether the stream has more than this.
        self.stream_index = 0

    def __repr__(self):
        return f"StreamBuffer<{self.size}, {self.stream_index}, {self.cache!r}>"

    def read(self, offset, size):
        """``size`` bytes at ``offset`` (fewer only at the end of the stream)."""
        data = self.cache.read(offset, size)
        self.stream_index = max(self.stream_index, offset + len(data))
        return data

    def __getitem__(self, val):
        if isinstance(val, (tuple, list)) and len(val) == INDEX_SIZE:
            start, stop = val
        elif isinstance(val, slice):
            if val.step not in (None, 1):
                raise ValueError("a StreamBuffer slice has no step")
            start = 0 if val.start is None else val.start
            stop = self.cache.wait_complete() if val.stop is None else val.stop
        else:
            raise NotImplementedError(GETITEM_ERR)
        return self.read(start, max(0, stop - start))

    def is_exhausted(self):
        """Whether the stream has nothing past what has been read (waits until that is known:
        the end of the stream, or a byte past it)."""
        available = self.cache.wait_for(self.stream_index + 1)
        return self.cache.is_complete and available <= self.stream_index
