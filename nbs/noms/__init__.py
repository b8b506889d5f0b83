"""The Noms value layer over ``nbs`` chunk stores (format 7.18), and the ``noms`` command.

Values and types (``values``, ``types``), their binary codec (``decode``,
``codec``), prolly-tree walking (``prolly``) and building (``chunker``), the
datasets layer (``datas``), specs and paths (``spec``, ``path``), and Go
Noms's text output (``printer``, ``diff``, ``log``).  The CLI opens stores only
through ``nbs.noms.spec.open_chunk_store``.
"""

from nbs.noms.chunker import new_blob, new_list, new_map, new_set
from nbs.noms.datas import Database, is_commit
from nbs.noms.decode import decode_value
from nbs.noms.errors import (CommitError, DatasetError, DatasetSpecError, DecodeError, EncodeError,
                             MergeNeededError, NomsError, PathError, ValueNotFoundError)
from nbs.noms.path import Path
from nbs.noms.printer import describe_type, encoded_value
from nbs.noms.spec import AbsolutePath, ValueSpec, open_chunk_store, open_database, parse_dataset_spec, \
    parse_path_spec
from nbs.noms.value_store import ValueStore
from nbs.noms.values import Blob, Bool, List, Map, Number, Ref, Set, String, Struct, TypeValue, Value

__all__ = [
    "AbsolutePath", "Blob", "Bool", "CommitError", "Database", "DatasetError", "DatasetSpecError", "DecodeError",
    "EncodeError", "List", "Map", "MergeNeededError", "NomsError", "Number", "Path", "PathError", "Ref", "Set",
    "String", "Struct", "TypeValue", "Value", "ValueNotFoundError", "ValueSpec", "ValueStore", "decode_value",
    "describe_type", "encoded_value", "is_commit", "new_blob", "new_list", "new_map", "new_set",
    "open_chunk_store", "open_database", "parse_dataset_spec", "parse_path_spec",
]
