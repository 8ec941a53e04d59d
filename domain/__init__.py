"""The domain vocabulary: what a run, job and commit are (records) and how their states order (state).

Shared by ingest (which produces records), store (which keeps them) and the views; imports nothing
of the project.
"""
