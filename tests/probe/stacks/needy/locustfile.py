"""Traffic for the needy service: each user keeps one /work request in flight, one after the other."""

from locust import FastHttpUser, constant, task


class Needy(FastHttpUser):
    wait_time = constant(0)

    @task
    def work(self) -> None:
        self.client.get("/work")
