"""Build the blob store the settings ask for."""

from __future__ import annotations

from dockyard.config import Settings
from dockyard.storage.base import BlobStore
from dockyard.storage.fs import FilesystemBlobStore


def create_store(settings: Settings) -> BlobStore:
    if settings.storage_backend == "s3":
        from dockyard.storage.s3 import S3BlobStore

        return S3BlobStore(
            endpoint_url=settings.s3_endpoint or None,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            path_style=settings.s3_path_style,
            prefix=settings.s3_prefix,
            redirect=settings.s3_redirect,
            create_bucket=True,
        )
    return FilesystemBlobStore(settings.data_dir / "storage", fsync=settings.fsync)
