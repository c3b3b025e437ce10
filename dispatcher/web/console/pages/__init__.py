"""The console's page routers, one module per area."""

from dispatcher.web.console.pages import auth, campaign, campaigns, compose, people

ROUTERS = [auth.router, campaigns.router, compose.router, campaign.router, people.router]
