"""The emergency area (spec §10): raising, locating, watching, cancelling and moving emergencies on.

Modules: ``states`` (lifecycle table), ``ids`` (names and incident ids), ``geo`` (distances),
``duress`` (verifier), ``views`` (reporter vs staff view), ``repository`` (rows and fixes),
``events`` (watch-stream publishing), ``paging`` (list tokens), ``service`` (the use cases),
``timers`` (countdowns and dispatch deadlines), ``retention`` (purges of fixes and emergencies).
"""
