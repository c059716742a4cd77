"""``StreamCache``: the Rust class, plus ``reader()``."""

from ._reader import Reader
from ._streamcache import StreamCache as _Core


class StreamCache(_Core):
    """One byte stream, read once by a background thread; any number of threads read any part
    of it as soon as it has arrived.

    ``StreamCache(source, *, memory_limit=8 << 20, expected_len=None, max_len=None,
    temp_dir=None, chunk_size=None, headers=None, fetch_ahead=4 << 20, fetch_span=4 << 20,
    max_fetches=2, connections=1, defer_fill=False, options=None, cache_dir=None,
    cache_limit=None)``

    ``source`` is an http(s) URL, an object-store URL (``s3://bucket/key`` or ``s3a://``,
    ``gs://``, ``az://``, ``azure://``, ``abfs://``, ``abfss://``, ``adl://``,
    ``file:///absolute/path``, ``memory:///key``), a binary file object (``readinto`` is
    preferred over ``read``), a bytes-like object, or an iterable of bytes-like chunks (a
    generator, ``requests``' ``iter_content()``). Up to ``memory_limit`` bytes stay in memory, the rest
    goes to an unnamed temporary file in ``temp_dir``. ``expected_len`` is a size hint,
    ``max_len`` a cap (past it, reads fail with ``ENOSPC``), ``chunk_size`` the largest single
    read from the source.

    For a URL only: ``headers`` (a ``dict`` of ``str`` to ``str``, sent with every request:
    ``{"Authorization": "Bearer ..."}`` for a private file; values never appear in errors).
    When the server answers ``Range``, a read at least ``fetch_ahead`` bytes past the
    in-order download is fetched at once, ``fetch_span`` bytes per request, by up to
    ``max_fetches`` requests at a time (0: in order only); ``connections=n`` fills the
    stream over ``n`` requests at once, ``fetch_span`` bytes each, lowest first (for a server
    or an object store that limits each connection: ``n`` times the rate, and every reader
    still reads from the first byte as it arrives). ``defer_fill=True`` holds the in-order
    download back until a read needs a byte within ``fetch_ahead`` of the front: a reader that
    looks at the end first and reads a small part (``zipfile``'s entry list and one entry, a
    parquet footer and a few columns) then costs little more than the bytes it reads, where
    by default a fast link brings the whole file meanwhile.

    For an object-store URL: ``options``, a ``dict`` of ``str`` to ``str`` of object_store's
    configuration keys (``aws_access_key_id``, ``aws_secret_access_key``, ``aws_region``,
    ``aws_endpoint``, ``aws_allow_http``, ``google_service_account``,
    ``azure_storage_account_name``, ``azure_storage_account_key``, ...), applied over the
    ``AWS_*``, ``GOOGLE_*`` and ``AZURE_*`` environment variables; an unknown key (or any
    option for ``file://`` and ``memory://``) is a ``ValueError`` naming it, and option values
    never appear in an error or a ``repr``. ``fetch_ahead``, ``fetch_span``, ``max_fetches``,
    ``connections`` and ``defer_fill`` work as for a URL (``headers`` is for http(s) only). One ``HEAD`` is
    made at once (a missing bucket or key is ``FileNotFoundError``, a refused one
    ``PermissionError``); every range asks for that very version, so if the object is
    overwritten while it is read, the bytes already there stay the first version's and a read
    that needs a missing byte raises ``OSError``: the new bytes are never spliced in.

    For a URL or an object: ``cache_dir`` makes the stream an entry of that directory, shared
    by every process on the machine (``multiprocessing`` workers, DataLoader workers, a later
    run): the first to open it downloads it once, the others read it as it arrives, zero-copy,
    and their far reads are fetched by that one download; a later process finds it complete
    and transfers nothing but a one-byte validation. If the downloading process dies, another
    takes over and fetches only what is missing. ``cache_limit`` (bytes): entries no process
    has open are removed, least recently used first, beyond it. A server answer without
    ``Range`` support or without a validator (ETag, Last-Modified) gets a private cache.

    Reading: ``reader(offset=0)`` (an ``io.RawIOBase``), ``read(offset, size)`` (``bytes``),
    ``cache[a:b]`` (a read-only ``memoryview`` of the stored bytes, no copy),
    ``read_at(offset, buffer)`` (into any writable buffer). Waiting: ``wait_for(offset,
    timeout=None)``, ``wait_complete()``. State: ``available``, ``len``, ``known_len`` (the
    length without waiting, when it is known), ``expected_len``, ``is_complete``,
    ``present()``.
    """

    __slots__ = ()

    def reader(self, offset=0):
        """A new cursor over the stream at ``offset``: an ``io.RawIOBase`` (``read``,
        ``readinto``, ``readall``, ``seek``, ``tell``, ...), for anything that takes a binary
        file."""
        return Reader(self, offset)
