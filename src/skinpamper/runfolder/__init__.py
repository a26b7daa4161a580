"""The run folder, read and written in one place without Keras (design.md, "Three rings").

`RunFolder` names, reads, checks and writes a run's files; `files` holds their names and what each
holds (`RUN_FOLDER_FILES`), `schemas` their declared shapes, `migrations` the format versions and how
an older run is read as the current one. `training.run.Run` adds Keras's model loading and saving.
"""

from skinpamper.runfolder.files import RUN_FOLDER_FILES, RunFile, run_folder_table
from skinpamper.runfolder.folder import RunFolder, holds_run, refuse_run_folder
from skinpamper.runfolder.migrations import FORMAT_VERSION
from skinpamper.runfolder.state import RunState

__all__ = [
    "FORMAT_VERSION",
    "RUN_FOLDER_FILES",
    "RunFile",
    "RunFolder",
    "RunState",
    "holds_run",
    "refuse_run_folder",
    "run_folder_table",
]
