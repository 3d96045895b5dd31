"""Compatibility with weights saved by other implementations (the official STAPFormer code)."""

from __future__ import annotations

from pose2met.compat.official import (
    OfficialWeightsError,
    convert_official_state_dict,
    load_official_stapformer,
    official_config_of,
    official_key_shapes,
    official_state_dict,
    parse_official_config,
)

__all__ = [
    "OfficialWeightsError",
    "convert_official_state_dict",
    "load_official_stapformer",
    "official_config_of",
    "official_key_shapes",
    "official_state_dict",
    "parse_official_config",
]
