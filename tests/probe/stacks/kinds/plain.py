"""Plain traffic: GET /work ten times a second per user. No LoadTestShape: Locust's own -u/-r/-t."""

from locust import FastHttpUser, constant, task


class Worker(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def work(self) -> None:
        self.client.get("/work")
