"""portone_recon: reconcile PortOne V1 recurring payments with the merchant's own orders.

``import portone_recon as pr``; see the README for the analyst tour.
"""

from portone_recon.config import Secret, Settings
from portone_recon.errors import PortOneReconError
from portone_recon.store import Store, open_store

__version__ = "0.1.0"

__all__ = [
    "PortOneReconError",
    "Secret",
    "Settings",
    "Store",
    "__version__",
    "open_store",
]
