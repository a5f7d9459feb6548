"""The whole navigation in one list: every screen of the UI is reachable from here."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str
    url_name: str
    role: str = "auditor"


MENU: list[MenuItem] = [
    MenuItem("Dashboard", "web:dashboard"),
    MenuItem("Exposure", "exposure:search"),
    MenuItem("Notices", "catalog:notice_list"),
    MenuItem("Upstreams", "catalog:upstream_list"),
    MenuItem("Machines", "inventory:machine_list"),
    MenuItem("Updates", "approvals:update_list"),
    MenuItem("Rings", "approvals:ring_board"),
    MenuItem("Rules", "approvals:rule_list"),
    MenuItem("Groups", "approvals:group_list"),
    MenuItem("Deployments", "deployments:deployment_list"),
    MenuItem("Repositories", "repos:repository_list"),
    MenuItem("Packages", "repos:package_list"),
    MenuItem("OUs", "directory:ou_list"),
    MenuItem("Jobs", "web:job_list"),
    MenuItem("Enrollment", "web:enrollment"),
    MenuItem("Users", "web:user_list", role="admin"),
    MenuItem("Directories", "directory:source_list"),
    MenuItem("API", "api-docs"),
]
