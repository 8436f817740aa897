"""ray-decorator's first example, as its users wrote it, with zoopipe's import.

Run from a directory holding ./local_data, with RAY_ADDRESS set (or a Ray started with
`ray start --head`, which "auto" finds), and an S3 bucket "my-bucket" your credentials reach:

    python examples/offload/process_data.py
"""

import os

from zoopipe_ray import ray_decorator


@ray_decorator(
    deps=["data_dir"],
    outs=["output_dir"],
    ray_address="auto",
    s3_base_path="s3://my-bucket/jobs",
    ray_init_kwargs={"runtime_env": {"working_dir": os.getcwd()}},
    ray_remote_kwargs={"num_cpus": 2},
)
def process_data(data_dir: str, output_dir: str):
    print(f"Processing data from {data_dir}")
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "result.txt"), "w") as f:
        f.write("Done!")


if __name__ == "__main__":
    process_data(data_dir="./local_data", output_dir="./local_results")
