"""One name for one idea: the engine, the store schema and the config use the same words."""

from __future__ import annotations

from storage.schema import TERMS as STORE_TERMS
from workers.config import FitConfig
from workers.inversion.fit import TERMS as ENGINE_TERMS
from workers.model.settings import Settings


def test_engine_and_store_name_the_figure_of_merit_terms_alike():
    assert ENGINE_TERMS == STORE_TERMS


def test_config_settings_keys_are_the_engine_settings():
    assert set(FitConfig().to_dict()["settings"]) == set(Settings.keys())
