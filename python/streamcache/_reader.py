"""``Reader``: a cursor over a ``StreamCache``, as an ``io.RawIOBase``."""

import io
import operator


class Reader(io.RawIOBase):
    """A seekable, read-only binary file over a ``StreamCache``: ``read``, ``readinto``,
    ``readall``, ``seek``, ``tell``. ``read(size)`` returns ``size`` bytes, fewer only at the
    end of the stream, as a file on disk does: the parsers that read a header or a footer
    with one ``read`` (``tarfile``, ``struct``-based formats) count on it. ``readinto``, the
    raw-I/O call that ``io.BufferedReader`` and ``hashlib.file_digest`` build on, returns what
    has arrived, waiting only for its first byte (0 only at the end of the stream). Over a
    URL, a long read far ahead is fetched by several requests at once.
    ``seek(0, SEEK_END)`` and ``readall()`` need the stream's length: over
    a URL whose server answers ``Range`` it is known at once (``cache.known_len``), so a
    reader that looks at the end first (``zipfile``, footer formats) gets it without waiting
    for the download; for other sources they wait for the end of the stream. Seeking past the
    end is allowed (reads there return ``b""``).

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
        """Copies what has arrived from the cursor into ``buffer`` (any writable buffer), up
        to its size; waits only for the first byte. Returns the number of bytes, 0 only at
        the end of the stream."""
        self._check()
        n = self._cache.read_at(self._pos, buffer)
        self._pos += n
        return n

    def read(self, size=-1):
        self._check()
        if size is None or size < 0:
            return self.readall()
        data = self._cache.read(self._pos, size)  # all of them, or up to the end
        self._pos += len(data)
        return data

    def _len(self):
        """The stream's length: at once when known, else at the end of the stream."""
        known = self._cache.known_len
        return self._cache.wait_complete() if known is None else known

    def readall(self):
        self._check()
        end = self._len()
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
            pos = self._len() + offset
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
