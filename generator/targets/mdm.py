"""Per-user variables of MDM consoles, for generic Apple profiles uploaded once per domain.

Sources and caveats: docs/mdm-variables.md. Each console replaces its tokens when it delivers the profile
to a user; the tokens sit in <string> values only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Console:
    name: str
    title: str
    email: str  # the user's e-mail address
    local: str | None  # the part before @, if the console has a variable that is reliably that
    display_name: str  # the user's full name


CONSOLES: dict[str, Console] = {
    # Microsoft Learn, "Tokens used in the property list" (Intune custom profiles use the same list):
    # {{mail}} = address, {{partialupn}} = UPN before @, {{username}} = display name ("John Doe").
    "intune": Console("intune", "Microsoft Intune", "{{mail}}", "{{partialupn}}", "{{username}}"),
    # Jamf Pro, "Computer/Mobile Device Configuration Profiles": $EMAIL, $USERNAME (login, not the local
    # part), $FULLNAME.
    "jamf": Console("jamf", "Jamf Pro", "$EMAIL", None, "$FULLNAME"),
    # Workspace ONE UEM lookup values: {EmailAddress}, {EmailUserName}; no display-name value, so first + last.
    "workspace-one": Console("workspace-one", "Workspace ONE UEM", "{EmailAddress}", "{EmailUserName}",
                             "{FirstName} {LastName}"),
}


def console_value(template: str, console: Console, domain: str) -> str:
    """A spec user-name template with the console's variables in place of our placeholders.

    Raises ValueError when the console has no variable for a placeholder the template uses."""
    if "%EMAILLOCALPART%" in template and console.local is None:
        raise ValueError(f"{console.title} has no variable for the part of the address before the @")
    out = template.replace("%EMAILADDRESS%", console.email).replace("%EMAILDOMAIN%", domain)
    out = out.replace("%REALNAME%", console.display_name)
    return out.replace("%EMAILLOCALPART%", console.local or "")
