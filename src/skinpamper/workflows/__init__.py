"""The one place each job is orchestrated, for every front end (design.md, "three rings").

`skinpamper train` and `skinpamper.train`, `skinpamper evaluate` and `skinpamper.evaluate` call the
same function here, so the two doors cannot drift: the same settings, default folder, lock, data,
split, members, outputs and the same rule for what counts as the run's own data. Front ends keep
only parsing, progress display and rendering; nothing here prints.

Importing a workflow module does not import Keras: each imports the engine inside the functions that
need it, so `import skinpamper` and the notebook API's data functions stay light.
"""
