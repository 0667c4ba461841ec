"""Finding each real dataset by name: under a root, given one by one, or the folder itself; clear errors."""

from __future__ import annotations

import pytest

from lrkit.data.roots import DatasetMissing, dataset_folder, find_datasets, parse_data_args
from lrkit.data.training_sets import open_images


def test_root_mapping_and_folder_forms(tmp_path):
    from lrkit.data.synthfaces import export_folder

    celeba = export_folder("faces", tmp_path / "data" / "celeba_hq", n_train=2, n_val=1, size=32, seed=0)
    (tmp_path / "data" / "afhq").mkdir()
    assert find_datasets(tmp_path / "data") == {"celeba_hq": str(celeba.resolve()),
                                                "afhq": str((tmp_path / "data" / "afhq").resolve())}
    assert dataset_folder("celeba_hq", tmp_path / "data") == celeba  # a root holding it
    assert dataset_folder("celeba_hq", celeba) == celeba  # the folder itself
    assert dataset_folder("celeba_hq", {"celeba_hq": str(celeba)}) == celeba
    a = open_images("celeba_hq", "train", 32, data_root=str(tmp_path / "data"))
    b = open_images("celeba_hq", "train", 32, data_root={"celeba_hq": str(celeba)})
    assert a.fingerprint == b.fingerprint and len(a) == 4 and a.domain_names == ("longhair", "shorthair")


def test_missing_datasets_name_the_fix(tmp_path):
    (tmp_path / "afhq").mkdir()
    with pytest.raises(DatasetMissing, match=r"holds afhq/ but no celeba_hq/ folder.*lrkit data download celeba_hq"):
        dataset_folder("celeba_hq", tmp_path)
    with pytest.raises(DatasetMissing, match=r"no folder was given for it \(given: afhq\).*--data celeba_hq=PATH"):
        dataset_folder("celeba_hq", {"afhq": str(tmp_path / "afhq")})
    with pytest.raises(DatasetMissing, match="synthfaces preset"):
        dataset_folder("afhq", None)
    with pytest.raises(FileNotFoundError):  # DatasetMissing is a FileNotFoundError too
        open_images("afhq", "train", 32, data_root={})
    with pytest.raises(ValueError, match="write NAME=PATH"):
        parse_data_args(["celeba_hq"])
    with pytest.raises(ValueError, match="unknown dataset 'ffhq'"):
        parse_data_args([f"ffhq={tmp_path}"])
    assert parse_data_args([f"afhq={tmp_path / 'afhq'}"]) == {"afhq": str((tmp_path / "afhq").resolve())}
