"""The Noms value layer over ``nbs`` chunk stores (format 7.18), and the ``noms`` command.

The public API, for reading and writing Noms databases on every backend:

* ``open_database(spec, nbsd=None)`` - a ``Database`` on a local directory, ``mem``, AWS or through nbsd;
* values: ``Bool``, ``Number``, ``String``, ``Struct``, ``Ref`` and, built into a store, ``new_list``,
  ``new_map``, ``new_set``, ``new_blob``, ``blob_from_file``/``blob_from_stream``, or ``to_value`` for
  plain Python data;
* ``Database.commit(dataset, value, meta=new_meta(...))``, ``head``, ``head_value``, ``history``,
  ``delete``, ``set_head``, ``fast_forward``, ``write_value``, ``read_value``;
* ``diff``/``print_diff`` (two values), ``three_way`` (merge), ``pull`` (copy between stores),
  ``list_splice``/``map_edit``/``set_edit``/``struct_set``/``struct_delete`` (new versions of values).

Modules: values and types (``values``, ``types``), their codec (``decode``, ``codec``), prolly trees
(``prolly``, ``chunker``), datasets (``datas``, ``meta``), specs and paths (``spec``, ``path``), Go
Noms's text output (``printer``, ``diff``, ``log``) and the CLI (``cli``, ``commands``).
"""

from nbs.noms.builders import blob_from_file, blob_from_stream, to_value
from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.datas import Database, is_commit
from nbs.noms.decode import decode_value
from nbs.noms.diff import Change, Difference, ValueChanged, diff, diff_text, value_changes
from nbs.noms.edit import EditError, list_splice, map_edit, set_edit, struct_delete, struct_set
from nbs.noms.errors import (CommitError, DatasetError, DatasetSpecError, DecodeError, EncodeError,
                             MergeNeededError, NomsError, PathError, ValueNotFoundError)
from nbs.noms.merge import MergeConflict, ours, theirs, three_way
from nbs.noms.meta import MetaError, new_meta
from nbs.noms.path import Path
from nbs.noms.printer import describe_type, encoded_value
from nbs.noms.pull import PullProgress, pull
from nbs.noms.spec import AbsolutePath, ValueSpec, open_chunk_store, open_database, parse_dataset_spec, \
    parse_path_spec
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Blob, Bool, List, Map, Number, Ref, Set, String, Struct, TypeValue, Value

__all__ = [
    "AbsolutePath", "Blob", "Bool", "Change", "CommitError", "Database", "DatasetError", "DatasetSpecError",
    "DecodeError", "Difference", "EditError", "EncodeError", "List", "Map", "MergeConflict", "MergeNeededError",
    "MetaError", "NomsError", "Number", "Path", "PathError", "PullProgress", "Ref", "Set", "String", "Struct",
    "TypeValue", "Value", "ValueChanged", "ValueNotFoundError", "ValueSpec", "ValueStore", "blob_from_file",
    "blob_from_stream", "decode_value", "describe_type", "diff", "diff_text", "encoded_value", "is_commit",
    "list_splice", "map_edit", "new_blob", "new_list", "new_map", "new_meta", "new_set", "open_chunk_store",
    "open_database", "ours", "parse_dataset_spec", "parse_path_spec", "pull", "set_edit", "struct_delete",
    "struct_set", "theirs", "three_way", "to_value", "value_changes",
]
