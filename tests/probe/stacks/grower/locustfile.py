"""Traffic for the grower service: every request makes it hold 4 MiB more."""

from locust import FastHttpUser, constant, task


class Hoarder(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def grow(self) -> None:
        self.client.get("/grow")
