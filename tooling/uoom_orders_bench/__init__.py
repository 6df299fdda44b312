"""The benchmark command: the service side by side with a bare grpc.aio server, same run.

Run it as ``python -m uoom_orders_bench --help``. Every figure it prints is the median of
repeated rounds, and each round measures the baseline (``bare_server``) and the service
interleaved, because these machines are shared and noisy: only the paired ratio is stable.
"""
