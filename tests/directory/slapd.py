"""A real OpenLDAP server (Debian's slapd) laid out like a small Active Directory.

One per test session, on 127.0.0.1: plain LDAP (StartTLS offered) and LDAPS on free
ports, with a certificate from a test CA; its own configuration, schema and database
in a temporary folder. The schema adds the Active Directory attributes sign-in uses
(``sAMAccountName``, ``userPrincipalName``, ``msRTCSIP-PrimaryUserAddress``,
``userAccountControl``) and the ``user`` and ``group`` classes, so the service's
Active Directory defaults (filter with the bitwise-AND rule, group type) are what the
tests run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ldap
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deviceupdate.directory import DirectoryConfig
from tests.conftest import free_port, wait_until

SUFFIX = "dc=contoso,dc=com"
STAFF = f"ou=Staff,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-for-tests"
SERVICE_DN = f"cn=svc-deviceupdate,ou=Service,{SUFFIX}"
SERVICE_PASSWORD = "service-secret-for-tests"
ADMINS_GROUP = "DU Admins"
HELPDESK_GROUP = "DU Helpdesk"
PASSWORD = "Directory-Pa55"  # every test user's
NESTED_ADMINS_GROUP = "DU Nested Admins"  # its one member is the group below
TIER2_GROUP = "Tier 2"


def user_dn(name: str) -> str:
    return f"cn={name},{STAFF}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


SCHEMA = """\
attributetype ( 1.3.6.1.4.1.55555.7.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.7.1.2 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.7.1.3 NAME 'msRTCSIP-PrimaryUserAddress'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.7.1.4 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.7.2.1 NAME 'user' SUP inetOrgPerson STRUCTURAL
  MAY ( sAMAccountName $ userPrincipalName $ msRTCSIP-PrimaryUserAddress $
        userAccountControl ) )
objectclass ( 1.3.6.1.4.1.55555.7.2.2 NAME 'group' SUP groupOfNames STRUCTURAL )
"""

# name, SIP address, userAccountControl (512 enabled, 514 disabled), groups
USERS = [
    ("alice", "sip:alice@contoso.com", 512, [ADMINS_GROUP]),
    ("oscar", "sip:oscar@contoso.com", 512, [ADMINS_GROUP]),
    ("harry", "sip:harry@contoso.com", 512, [HELPDESK_GROUP]),
    # A phone user whose SIP address is not the principal name.
    ("pat", "sip:pat.phone@contoso.com", 512, []),
    # Disabled in the directory, though still in the administrators' group.
    ("dave", "sip:dave@contoso.com", 514, [ADMINS_GROUP]),
    # An administrator only through a group nested in the role group.
    ("kim", "sip:kim@contoso.com", 512, [TIER2_GROUP]),
]


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: contoso\no: Contoso",
        *(
            f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}"
            for ou in ("Staff", "Service", "Groups")
        ),
        f"dn: {SERVICE_DN}\nobjectClass: user\ncn: svc-deviceupdate\nsn: Service\n"
        f"sAMAccountName: svc-deviceupdate\nuserAccountControl: 512\n"
        f"userPassword: {SERVICE_PASSWORD}",
    ]
    for name, sip, control, _ in USERS:
        entries.append(
            f"dn: {user_dn(name)}\nobjectClass: user\ncn: {name}\nsn: {name.title()}\n"
            f"givenName: {name.title()}\nmail: {name}@contoso.com\n"
            f"sAMAccountName: {name}\nuserPrincipalName: {name}@contoso.com\n"
            f"msRTCSIP-PrimaryUserAddress: {sip}\nuserAccountControl: {control}\n"
            f"userPassword: {PASSWORD}"
        )
    for group in (ADMINS_GROUP, HELPDESK_GROUP, TIER2_GROUP):
        members = [user_dn(name) for name, _, _, groups in USERS if group in groups]
        lines = "".join(f"\nmember: {member}" for member in members)
        entries.append(f"dn: {group_dn(group)}\nobjectClass: group\ncn: {group}{lines}")
    entries.append(
        f"dn: {group_dn(NESTED_ADMINS_GROUP)}\nobjectClass: group\ncn: {NESTED_ADMINS_GROUP}\n"
        f"member: {group_dn(TIER2_GROUP)}"
    )
    return "\n\n".join(entries) + "\n"


def _write_ca(folder: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(key, hashes.SHA256())
    )
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _write_server_certificate(folder: Path) -> None:
    ca_key, ca_cert = _write_ca(folder, "test-ca")
    _write_ca(folder, "other-ca")  # trusted by nobody here: a certificate it did not issue
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass
class Slapd:
    """A running slapd; ``stop()`` and ``start()`` it to play a directory outage."""

    slapd: str
    slapadd: str
    folder: Path
    ldap_port: int
    ldaps_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "test-ca.pem"

    @property
    def other_ca_file(self) -> Path:
        return self.folder / "other-ca.pem"

    def config(self, **changes: Any) -> DirectoryConfig:
        """The service's settings for this directory (plain LDAP unless changed)."""
        config = DirectoryConfig(
            url=self.ldap_url,
            user_base=STAFF,
            bind_dn=SERVICE_DN,
            bind_password=SERVICE_PASSWORD,
            group_base=GROUPS,
            administrators_group=ADMINS_GROUP,
            helpdesk_group=HELPDESK_GROUP,
            netbios_domains={"CONTOSO": "contoso.com"},
            cache_seconds=300,
            timeout=5,
            retry_after=45,
        )
        return replace(config, **changes)

    def create(self) -> None:
        data = self.folder / "data"
        data.mkdir()
        (self.folder / "ad-test.schema").write_text(SCHEMA)
        _write_server_certificate(self.folder)
        f = self.folder
        (f / "slapd.conf").write_text(
            "include /etc/ldap/schema/core.schema\n"
            "include /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            f"include {f / 'ad-test.schema'}\n"
            f"pidfile {f / 'slapd.pid'}\n"
            f"argsfile {f / 'slapd.args'}\n"
            "modulepath /usr/lib/ldap\n"
            "moduleload back_mdb\n"
            f"TLSCACertificateFile {f / 'test-ca.pem'}\n"
            f"TLSCertificateFile {f / 'server.pem'}\n"
            f"TLSCertificateKeyFile {f / 'server.key'}\n"
            "database mdb\n"
            f'suffix "{SUFFIX}"\n'
            f'rootdn "{ROOT_DN}"\n'
            f"rootpw {ROOT_PASSWORD}\n"
            f"directory {data}\n"
            "maxsize 10485760\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            "access to * by users read by * none\n"
        )
        (f / "data.ldif").write_text(_ldif())
        subprocess.run(
            [self.slapadd, "-q", "-f", str(f / "slapd.conf"), "-l", str(f / "data.ldif")],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        log = (self.folder / "slapd.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [
                    self.slapd, "-f", str(self.folder / "slapd.conf"),
                    "-h", f"{self.ldap_url}/ {self.ldaps_url}/", "-d", "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(self.answers, "slapd to answer", seconds=30)

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = (self.folder / "slapd.log").read_text(errors="replace")
            raise RuntimeError(f"slapd exited with {self.process.returncode}:\n{log[-2000:]}")
        connection = ldap.initialize(self.ldap_url)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 1.0)
        try:
            connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        except ldap.SERVER_DOWN:
            return False
        connection.unbind_s()
        return True

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes] | None]]) -> None:
        """Change an entry as the directory's administrator would."""
        connection = ldap.initialize(self.ldap_url)
        connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        try:
            connection.modify_s(dn, changes)
        finally:
            connection.unbind_s()


def create_slapd(*, slapd: str, slapadd: str, folder: Path) -> Slapd:
    ldap_port = free_port()
    ldaps_port = free_port()
    while ldaps_port == ldap_port:
        ldaps_port = free_port()
    server = Slapd(
        slapd=slapd, slapadd=slapadd, folder=folder, ldap_port=ldap_port, ldaps_port=ldaps_port
    )
    server.create()
    return server
