"""The public API's annotations, as a type checker reads them (a review ran mypy over a notebook's calls:
``predict(196, 242)``, the documented Surprise-style call, failed to type-check; many functions returned Any)."""

import inspect
import typing

import embedrec as er
from embedrec import models
from embedrec.data.ids import MISSING
from embedrec.models_lookup import MISSING as TITLE_MISSING
from embedrec.models_recommend import SIMILAR_MISSING
from embedrec.models_scores import PREDICT_ALIASES, PREDICT_MISSING


def _returns(f) -> str:
    return inspect.signature(f).return_annotation


def test_the_public_calls_say_what_they_return():
    assert _returns(er.load_config) == "Config"
    assert _returns(er.ingest) == "Dataset" and _returns(er.load_dataset) == "Dataset"
    assert _returns(er.Model.history) == "History" and _returns(er.Model.similar_users) == "SimilarUsers"
    assert _returns(er.Model.explain) == "Explanation | list[Explanation]"
    assert _returns(er.Model.find_movie) == "int | str" and _returns(er.Model.answer) == "Answer"
    assert _returns(er.Model.torch_module) == "torch.nn.Module"
    assert set(typing.get_overloads(er.score_lists)) and _returns(er.score_lists) != inspect.Signature.empty


def test_predict_takes_one_pair_as_surprise_does():
    p = inspect.signature(er.Model.predict).parameters
    assert p["pairs"].annotation == "Any" and p["movie"].annotation == "Any"  # predict(196, 242) type-checks


def test_missing_literals_are_the_values_the_calls_take():
    assert typing.get_args(models.Missing) == MISSING
    assert typing.get_args(models.TitleMissing) == TITLE_MISSING == SIMILAR_MISSING
    assert set(typing.get_args(models.PredictMissing)) == set(PREDICT_MISSING) | set(PREDICT_ALIASES)
    for f, name in ((er.Model.recommend, "Missing | None"), (er.Model.recommend_stream, "Missing"),
                    (er.Model.recommend_new, "TitleMissing | None"), (er.Model.similar, "TitleMissing"),
                    (er.Model.similar_users, "TitleMissing"), (er.Model.resolve_movies, "TitleMissing"),
                    (er.Model.predict, "PredictMissing")):
        assert inspect.signature(f).parameters["missing"].annotation == name, f
