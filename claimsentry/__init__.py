"""claimsentry: finds improper and fraudulent medical and pharmacy claims and writes ranked audit queues."""

__version__ = "0.1.0"
