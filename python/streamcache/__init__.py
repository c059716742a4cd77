"""Read one byte stream once; let many threads read any part of it as soon as it has arrived.

A ``StreamCache`` reads its source (an http(s) URL, an object-store URL such as
``s3://bucket/key`` with ``options={...}``, a binary file object, bytes, or an iterable of
bytes chunks such as ``requests``' ``iter_content()``) once, on a background thread, into
memory and then into an unnamed temporary file, and lets any number of threads read any part of
it as soon as that part has arrived::

    import hashlib, zipfile, streamcache

    cache = streamcache.StreamCache(response.iter_content(1 << 16))
    head = cache.read(0, 4)                          # waits for 4 bytes, not for the rest
    names = zipfile.ZipFile(cache.reader()).namelist()   # an io.RawIOBase: seek, read, ...
    digest = hashlib.file_digest(cache.reader(), "sha256").hexdigest()
    view = cache[10:20]                              # a read-only memoryview, no copy

Waits and copies release the GIL, so threads read in parallel, and a wait in the main thread
is interrupted by Ctrl-C. When the source raises, every read that needs a byte past that point
raises ``SourceError`` (an ``OSError``) with ``.offset`` and the source's exception as
``__cause__``; the bytes before it stay readable.

``StreamBuffer`` is the ``buffer`` package's class (``read(offset, size)``, ``[a:b]``,
``[(a, b)]``, ``is_exhausted()``) on top of a ``StreamCache``.
"""

from ._cache import StreamCache
from ._reader import Reader
from ._buffer import StreamBuffer
from ._streamcache import SourceError

__all__ = ["StreamCache", "Reader", "StreamBuffer", "SourceError"]
