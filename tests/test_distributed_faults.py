"""A rank that dies or hangs does not leave its partner waiting forever or ending with a backend traceback: the
partner's next collective raises RankLost, one line naming its rank (two CPU processes, gloo)."""

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp


def _worker(rank: int, port: int, folder: str, fault: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank), ANILA_DIST_TIMEOUT_S="3")
    torch.set_num_threads(1)
    from anila.errors import RankLost
    from anila.train.distributed import init_distributed

    context = init_distributed()
    parameter = torch.nn.Parameter(torch.ones(3))
    parameter.grad = torch.full((3,), float(rank))
    context.average_gradients([parameter])  # both ranks alive: the mean of 0 and 1
    assert torch.equal(parameter.grad, torch.full((3,), 0.5))
    context.barrier()
    if rank == 1:
        if fault == "dies":
            os._exit(0)  # gone without a word
        time.sleep(8)  # alive but silent: longer than the timeout
        os._exit(0)
    start = time.perf_counter()
    try:
        context.average_gradients([parameter])
        outcome = "no error"
    except RankLost as exc:
        outcome = str(exc)
    with open(os.path.join(folder, f"{fault}.txt"), "w") as f:
        f.write(f"{time.perf_counter() - start:.1f}\n{outcome}")
    os._exit(0)  # the process group cannot be torn down cleanly without its partner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["dies", "hangs"])
def test_the_partner_of_a_lost_rank_gets_one_line(tmp_path, fault):
    mp.spawn(_worker, args=(free_port(), str(tmp_path), fault), nprocs=2, join=True)
    waited, message = (tmp_path / f"{fault}.txt").read_text().split("\n", 1)
    assert message.startswith("rank 0 of 2: the average_gradients collective failed (")
    assert "\n" not in message and "ANILA_DIST_TIMEOUT_S" in message and "--resume" in message
    assert ("Connection" in message) if fault == "dies" else ("Timed out" in message)
    assert "pair.cc" not in message and "unbound_buffer" not in message  # no backend source paths
    assert float(waited) < 7.5  # the timeout (3 s) ended the wait, not the partner's exit (8 s)
