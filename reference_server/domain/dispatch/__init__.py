"""The dispatch area (spec §13): dispatches to 112/119 situation rooms, their acknowledgement
deadline, and the resumable per-agency dispatch streams.

Modules: ``agencies`` (which situation room is responsible), ``repository`` (rows), ``model``
(building and changing Dispatch messages), ``subscriptions`` (subscription scopes, replay,
fan-out), ``service`` (the use cases and the deadline timer).
"""
