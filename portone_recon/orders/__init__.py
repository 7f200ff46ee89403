"""The merchant's orders and subscriptions: load them from any source, write fixes back to SQL."""

from portone_recon.orders.load import LoadReport, load_orders, load_subscriptions
from portone_recon.orders.mapping import (
    ORDER_COLUMNS,
    ORDER_STATUSES,
    SUBSCRIPTION_COLUMNS,
    SUBSCRIPTION_STATUSES,
    ColumnMapping,
)
from portone_recon.orders.sources import SourceDescriptor, read_source
from portone_recon.orders.writer import OrdersWriter

__all__ = [
    "ORDER_COLUMNS",
    "ORDER_STATUSES",
    "SUBSCRIPTION_COLUMNS",
    "SUBSCRIPTION_STATUSES",
    "ColumnMapping",
    "LoadReport",
    "OrdersWriter",
    "SourceDescriptor",
    "load_orders",
    "load_subscriptions",
    "read_source",
]
