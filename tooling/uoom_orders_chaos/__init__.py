"""The fault-injection command (`python -m uoom_orders_chaos`): the service's roles as processes
on a local stack, under load, through one fault at a time, with the figures that say whether
anything acknowledged was lost, anything went back in time, and how fast it all converged."""
