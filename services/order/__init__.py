"""order-service: places orders, runs the order saga (sync or async), keeps orders event-sourced."""
