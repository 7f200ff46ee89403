"""Data files of portone_recon.reports (a package only so that setuptools ships them)."""
