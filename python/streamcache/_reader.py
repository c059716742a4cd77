"""``Reader``: a cursor over a ``StreamCache``, as an ``io.RawIOBase``."""

import io
import operator


class Reader(io.RawIOBase):
    """A seekable, read-only binary file over a ``StreamCache``: ``read``, ``readinto``,
    ``readall``, ``seek``, ``tell``. A read waits only for its first byte (``b""`` only at the
    end of the stream); ``seek(0, SEEK_END)`` and ``readall()`` wait for the end of the stream.
    Seeking past the end is allowed (reads there return ``b""``).

    Wrap it in ``io.BufferedReader`` for ``readline`` and small reads, or in
    ``io.TextIOWrapper`` for text.
    """

    def __init__(self, cache, offset=0):
        super().__init__()
        offset = operator.index(offset)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self._cache = cache
        self._pos = offset

    @property
    def cache(self):
        """The ``StreamCache`` this reader reads."""
        return self._cache

    def _check(self):
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def readable(self):
        self._check()
        return True

    def seekable(self):
        self._check()
        return True

    def readinto(self, buffer):
        """Fills ``buffer`` (any writable buffer) from the cursor; returns the number of
        bytes, 0 only at the end of the stream."""
        self._check()
        n = self._cache.read_at(self._pos, buffer)
        self._pos += n
        return n

    def read(self, size=-1):
        self._check()
        if size is None or size < 0:
            return self.readall()
        data = self._cache._read_some(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self):
        self._check()
        end = self._cache.wait_complete()
        data = self._cache.read(self._pos, max(0, end - self._pos))
        self._pos += len(data)
        return data

    def seek(self, offset, whence=io.SEEK_SET):
        self._check()
        offset = operator.index(offset)
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._cache.wait_complete() + offset
        else:
            raise ValueError(f"invalid whence ({whence!r}, should be 0, 1 or 2)")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self):
        self._check()
        return self._pos

    def close(self):
        super().close()
        # The cache lives on only through its other handles.
        self._cache = None

    def __repr__(self):
        if self.closed:
            return "<streamcache.Reader closed>"
        return f"<streamcache.Reader at {self._pos} of {self._cache!r}>"
