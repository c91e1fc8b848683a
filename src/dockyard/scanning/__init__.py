"""Vulnerability scanning: find the packages installed in an image and match them
against imported OSV vulnerability records, offline.

``image`` reads an image (OCI layout or Docker archive) into a layered file view,
``detectors`` finds installed packages in it, ``vulndb`` imports OSV records and
matches packages against them, ``report`` renders the findings.
"""
