"""The data layer: read every HAM10000 format into one Dataset, cache it, split it by lesion."""
