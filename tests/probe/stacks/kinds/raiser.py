"""A locustfile whose task breaks every time, after its request: the exception is the locustfile's own."""

from locust import FastHttpUser, constant, task


class Raiser(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def work_then_break(self) -> None:
        self.client.get("/work")
        raise RuntimeError("the task broke after its request")
