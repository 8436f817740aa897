"""ray-decorator's hydra-zen example, as its users wrote it, with zoopipe's import: the model is
instantiated on the Ray worker only, never here.

    RAY_ADDRESS=... python examples/offload/zen_app.py

Hydra writes its run directory under ./outputs as well: the task's output replaces ./outputs
whole once the run succeeded, this run's Hydra logs included. To keep them, point Hydra
elsewhere: `python examples/offload/zen_app.py hydra.run.dir=.hydra-runs/now`.
"""

from hydra_zen import builds, store
from transformers import AutoModel
from zoopipe_ray import ray_zen


@store(
    name="my_app",
    model=builds(AutoModel.from_pretrained, pretrained_model_name_or_path="bert-base-uncased"),
    data_dir="./data",
    output_dir="./outputs",
)
def task(model, data_dir, output_dir):
    # 'model' is instantiated ONLY on the Ray worker
    print(f"Model: {model.config.model_type}")


if __name__ == "__main__":
    store.add_to_hydra_store()

    ray_zen(
        task,
        deps=["data_dir"],
        outs=["output_dir"],
        ray_address="auto",
        s3_base_path="s3://my-bucket/zen",
    ).hydra_main(config_name="my_app", config_path=None, version_base=None)()
