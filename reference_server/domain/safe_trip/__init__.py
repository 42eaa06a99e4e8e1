"""Safe trips (spec §11): the trip engine, its scheduler, views, watch streams and retention.

``engine.SafeTrips`` holds the behaviour; ``scheduler.TripScheduler`` runs detection and escalation
every second; ``purge`` registers trip data with the retention framework
(:mod:`reference_server.domain.retention`).
"""
