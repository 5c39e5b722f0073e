"""Per-user variables of MDM consoles, for generic Apple profiles uploaded once per domain.

Sources and caveats: docs/mdm-variables.md. Each console replaces its tokens when it delivers the profile
to a user; the tokens sit in <string> values only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Console:
    name: str
    title: str
    email: str  # the user's e-mail address
    local: str | None  # the part before @, if the console has a variable that is reliably that
    display_name: str  # the user's full name
    # What the console takes for a variable anywhere in a string. It replaces it (or, for a name it does not
    # know, may leave it or blank it: unverified), and none of the three documents a way to escape one.
    variable: re.Pattern[str]


CONSOLES: dict[str, Console] = {
    # Microsoft Learn, "Tokens used in the property list" (Intune custom profiles use the same list):
    # {{mail}} = address, {{partialupn}} = UPN before @, {{username}} = display name ("John Doe").
    # Tokens are {{name}}, case-sensitive and not validated [I1].
    "intune": Console("intune", "Microsoft Intune", "{{mail}}", "{{partialupn}}", "{{username}}",
                      re.compile(r"\{\{[^{}]*\}\}")),
    # Jamf Pro, "Computer/Mobile Device Configuration Profiles": $EMAIL, $USERNAME (login, not the local
    # part), $FULLNAME.
    # Payload variables are $ and upper-case letters, digits, '_' ($EXTENSIONATTRIBUTE_1) [J1].
    "jamf": Console("jamf", "Jamf Pro", "$EMAIL", None, "$FULLNAME", re.compile(r"\$[A-Z][A-Z0-9_]*")),
    # Workspace ONE UEM lookup values: {EmailAddress}, {EmailUserName}; no display-name value, so first + last.
    "workspace-one": Console("workspace-one", "Workspace ONE UEM", "{EmailAddress}", "{EmailUserName}",
                             "{FirstName} {LastName}", re.compile(r"\{[A-Za-z][A-Za-z0-9]*\}")),
}


def console_value(template: str, console: Console, domain: str) -> str:
    """A spec user-name template with the console's variables in place of our placeholders.

    Raises ValueError when the console has no variable for a placeholder the template uses."""
    if "%EMAILLOCALPART%" in template and console.local is None:
        raise ValueError(f"{console.title} has no variable for the part of the address before the @")
    out = template.replace("%EMAILADDRESS%", console.email).replace("%EMAILDOMAIN%", domain)
    out = out.replace("%REALNAME%", console.display_name)
    return out.replace("%EMAILLOCALPART%", console.local or "")


# Stands in for a console's variables when a profile is checked for variables it did not put there: matches
# no console's pattern, and cannot come from a spec (the model refuses control characters).
NO_VARIABLE = "\x00"


def neutral(console: Console) -> Console:
    """`console` with NO_VARIABLE in place of its variables: a profile made with it carries only the spec's
    own text, where any variable of `console` would be an injection."""
    return Console(console.name, console.title, NO_VARIABLE, NO_VARIABLE if console.local is not None else None,
                   NO_VARIABLE, console.variable)
