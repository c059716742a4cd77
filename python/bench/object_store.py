"""The Python side of the report's workload (s3) (benches/src/object_store.rs): the object's
upload with boto3, and s3fs's two reads that streamcache is timed against. Run by the report with
the Python of moto's venv (target/object-servers/venv, where s3fs is installed beside boto3):

    python object_store.py upload ENDPOINT KEY SECRET BUCKET OBJECT FILE PART_SIZE
    python object_store.py zip    ENDPOINT KEY SECRET BUCKET OBJECT
    python object_store.py cat    ENDPOINT KEY SECRET BUCKET OBJECT

`upload` creates BUCKET and uploads FILE as OBJECT in a multipart upload of PART_SIZE parts and
prints the object's ETag. `zip` opens the object with s3fs (its defaults: the "readahead" cache,
50 MiB blocks), lists the entries with `zipfile`, reads the last entry
whole, and prints `SECONDS ENTRIES SHA256_OF_LAST_ENTRY`. `cat` reads the whole object with
`fs.cat` and prints `SECONDS LEN SHA256`. The seconds are timed here, from building the
S3FileSystem to the last byte (the interpreter's start and the imports are not counted; the
hashes are taken after the clock stops). The region is us-east-1; nothing is read from AWS_*
(the report clears them).
"""

import hashlib
import sys
import time
import zipfile


def client(endpoint, key, secret):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def upload(endpoint, key, secret, bucket, name, path, part_size):
    s3 = client(endpoint, key, secret)
    s3.create_bucket(Bucket=bucket)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
    parts = []
    with open(path, "rb") as f:
        number = 1
        while True:
            data = f.read(part_size)
            if not data:
                break
            etag = s3.upload_part(
                Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data
            )["ETag"]
            parts.append({"ETag": etag, "PartNumber": number})
            number += 1
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    print(done["ETag"], len(parts))


def filesystem(endpoint, key, secret):
    import s3fs

    return s3fs.S3FileSystem(
        key=key,
        secret=secret,
        client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


def read_zip(endpoint, key, secret, bucket, name):
    import s3fs  # noqa: F401  (imported before the clock starts)

    start = time.perf_counter()
    fs = filesystem(endpoint, key, secret)
    with fs.open(f"{bucket}/{name}", "rb") as f:
        archive = zipfile.ZipFile(f)
        names = archive.namelist()
        last = archive.read(names[-1])
    seconds = time.perf_counter() - start
    print(f"{seconds:.6f} {len(names)} {hashlib.sha256(last).hexdigest()}")


def cat(endpoint, key, secret, bucket, name):
    import s3fs  # noqa: F401  (imported before the clock starts)

    start = time.perf_counter()
    fs = filesystem(endpoint, key, secret)
    data = fs.cat(f"{bucket}/{name}")
    seconds = time.perf_counter() - start
    print(f"{seconds:.6f} {len(data)} {hashlib.sha256(data).hexdigest()}")


def main(argv):
    command, rest = argv[1], argv[2:]
    if command == "upload":
        *head, path, part = rest
        upload(*head, path, int(part))
    elif command == "zip":
        read_zip(*rest)
    elif command == "cat":
        cat(*rest)
    else:
        sys.exit(f"object_store.py: no command {command!r}")


if __name__ == "__main__":
    main(sys.argv)
