"""Blob bytes behind one small interface, with a filesystem and an S3 backend."""

from dockyard.storage.base import BlobNotFound, BlobStore, UploadNotFound, UploadWriter

__all__ = ["BlobNotFound", "BlobStore", "UploadNotFound", "UploadWriter"]
