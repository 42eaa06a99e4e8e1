"""Service areas for the reference center: municipality boundaries, area lookup, point sampling.

Independent of the wire protocol; see ``service_areas.ServiceAreaIndex`` for routing lookups.
"""
