"""Which command-line option an ``OSError`` of a data command comes from."""

from __future__ import annotations

import argparse
import errno

from pose2met.data.argflags import describe_os_error, flag_for_path


def parser_and_args(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras")
    parser.add_argument("--skeletons")
    parser.add_argument("--output")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(
        ["--cameras", str(tmp_path / "cams.json"), "--skeletons", str(tmp_path / "skel"),
         "--output", str(tmp_path / "out" / "o.h5")]
    )  # fmt: skip
    return parser, args


def test_the_option_is_found_by_its_path_a_file_under_it_or_the_temp_file_beside_it(tmp_path):
    parser, args = parser_and_args(tmp_path)
    assert flag_for_path(parser, args, tmp_path / "cams.json") == ("--cameras", tmp_path / "cams.json")
    assert flag_for_path(parser, args, str(tmp_path / "skel" / "S001.skeleton"))[0] == "--skeletons"
    assert flag_for_path(parser, args, tmp_path / "out" / ".o.h5.tmp-1234")[0] == "--output"
    assert flag_for_path(parser, args, tmp_path / "out")[0] == "--output"  # its folder
    assert flag_for_path(parser, args, tmp_path / "elsewhere.txt") is None
    assert flag_for_path(parser, args, None) is None


def test_the_most_specific_path_option_wins_and_choices_are_not_paths(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", choices=["tiny", "default"])
    parser.add_argument("--skeletons")
    parser.add_argument("--output")
    args = parser.parse_args(
        [
            "--preset",
            "tiny",
            "--skeletons",
            str(tmp_path / "skel"),
            "--output",
            str(tmp_path / "skel" / "o.h5"),
        ]
    )
    assert flag_for_path(parser, args, tmp_path / "skel" / "o.h5")[0] == "--output"  # exact beats folder
    assert flag_for_path(parser, args, tmp_path / "skel" / "S001.skeleton")[0] == "--skeletons"
    assert flag_for_path(parser, args, "tiny") is None  # --preset tiny is a choice, not a path
    nested = parser.parse_args(
        ["--skeletons", str(tmp_path / "a"), "--output", str(tmp_path / "a" / "b" / "o.h5")]
    )
    assert flag_for_path(parser, nested, tmp_path / "a" / "b" / ".o.h5.tmp-1")[0] == "--output"  # temp file
    assert flag_for_path(parser, nested, tmp_path / "a" / "b")[0] == "--output"  # a folder on its way


def test_messages_name_the_option_and_its_value(tmp_path):
    parser, args = parser_and_args(tmp_path)
    (tmp_path / "cams.json").mkdir()
    err = IsADirectoryError(errno.EISDIR, "Is a directory", str(tmp_path / "cams.json"))
    assert describe_os_error(err, parser, args) == f"--cameras {tmp_path / 'cams.json'}: Is a directory"
    (tmp_path / "out").write_text("a file")
    err = FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "out"))
    assert describe_os_error(err, parser, args) == (
        f"--output {tmp_path / 'out' / 'o.h5'}: {tmp_path / 'out'} is a file, not a folder"
    )
    unrelated = PermissionError(errno.EACCES, "Permission denied", "/somewhere/else")
    assert describe_os_error(unrelated, parser, args) == str(unrelated)
