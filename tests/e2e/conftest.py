from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import RunningGateway, start_gateway

MODEL = "huggingface/smollm2-135m-instruct"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modelyard-data")


@pytest.fixture(scope="session")
def gateway(data_dir: Path) -> Iterator[RunningGateway]:
    running = start_gateway(data_dir)
    yield running
    running.stop()


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=gateway.app_key, max_retries=0)


@pytest.fixture
def async_client(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.api_url, api_key=gateway.app_key, max_retries=0)
