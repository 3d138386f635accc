"""The WorkDistributor on TandemKV jobs: a producer spreads work items across
every worker process of a cluster and gets the results back in order; a
worker that dies mid-item loses it to the others, nothing is lost or
counted twice. See examples/work_distributor/README.md.
"""
