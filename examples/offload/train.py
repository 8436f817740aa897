"""ray-decorator's Hydra example, as its users wrote it, with zoopipe's import.

`config.yaml` beside this file names the paths; Ray is RAY_ADDRESS's (or a local one), the store
RAY_S3_BASE_PATH's (or, when every Ray node is this host, a directory of this host):

    python examples/offload/train.py data.path=./data training.output_dir=./model
"""

import hydra
from omegaconf import DictConfig
from zoopipe_ray import ray_decorator


@hydra.main(config_name="config", config_path=".", version_base=None)
@ray_decorator(
    deps=["config.data.path"],
    outs=["config.training.output_dir"],
)
def train(config: DictConfig):
    # This runs on Ray!
    print(f"Training on {config.data.path}")


if __name__ == "__main__":
    train()
