//! Starts a real OpenLDAP `slapd` on free ports (plain `ldap://` and `ldaps://` with a CA made
//! by `openssl`), with a temporary `cn=config` built by `slapadd -n0`, an `mdb` database and
//! the `memberof` overlay, then loads the test directory. Killed on drop.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod};

pub const BASE: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PW: &str = "admin-secret";
pub const READER_DN: &str = "cn=reader,ou=services,dc=example,dc=org";
pub const READER_PW: &str = "reader-secret";

/// (uid, password, display name, mail, ou)
pub const USERS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "alice",
        "alice-ldap-pw",
        "Alice Liddell",
        "alice@example.org",
        "people",
    ),
    (
        "bob",
        "bob-ldap-pw",
        "Bob Builder",
        "bob@example.org",
        "people",
    ),
    (
        "jos\u{e9}",
        "p\u{e4}ss-jos\u{e9}",
        "Jos\u{e9} N\u{fa}\u{f1}ez",
        "jose@example.org",
        "people",
    ),
    (
        "a*b(c)",
        "star-pw",
        "Star User",
        "star@example.org",
        "people",
    ),
    (
        "x,y=z",
        "comma-pw",
        "Comma User",
        "comma@example.org",
        "people",
    ),
    (
        "twin",
        "twin-pw-1",
        "Twin One",
        "twin1@example.org",
        "people",
    ),
    (
        "twin",
        "twin-pw-2",
        "Twin Two",
        "twin2@example.org",
        "contractors",
    ),
];

/// (group cn, member uids in ou=people)
pub const GROUP_MEMBERS: &[(&str, &[&str])] = &[
    ("staff", &["alice", "jos\u{e9}"]),
    ("admins", &["alice"]),
    ("weird", &["a*b(c)"]),
];

pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    pub tls_port: u16,
}

impl Slapd {
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn tls_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Starts slapd and loads the directory, or reports it missing (see `service_missing`).
    pub async fn start_or_skip() -> Option<Slapd> {
        match Slapd::start().await {
            Ok(s) => Some(s),
            Err(e) => {
                super::service_missing("OpenLDAP slapd (apt-get install slapd ldap-utils)", e);
                None
            }
        }
    }

    async fn start() -> Result<Slapd, String> {
        let slapd = find_slapd().ok_or("no slapd binary in /usr/sbin or PATH")?;
        let _ = slapd;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        make_certs(dir.path())?;
        let conf = dir.path().join("slapd.d");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&conf).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        let ldif = dir.path().join("config.ldif");
        std::fs::write(&ldif, config_ldif(dir.path())).map_err(|e| e.to_string())?;
        run(Command::new(sbin("slapadd"))
            .arg("-n0")
            .arg("-F")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif))?;
        let mut s = Slapd {
            dir,
            child: None,
            port: super::free_port(),
            tls_port: super::free_port(),
        };
        s.restart().await?;
        s.load().await?;
        Ok(s)
    }

    /// Kills slapd (the data stays): the directory is down until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same ports and waits until it accepts connections.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let log =
            std::fs::File::create(self.dir.path().join("slapd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(find_slapd().ok_or("no slapd")?)
            .arg("-d")
            .arg("0")
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.port, self.tls_port
            ))
            .arg("-F")
            .arg(self.dir.path().join("slapd.d"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start slapd: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.tls_port)).is_ok()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log =
                    std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
                return Err(format!("slapd exited with {status}: {log}"));
            }
            if Instant::now() > deadline {
                return Err("slapd did not start listening within 15s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An admin connection (rootdn), for loading and changing data.
    pub async fn admin(&self) -> Result<ldap3::Ldap, String> {
        let (conn, mut ldap) = LdapConnAsync::new(&self.url())
            .await
            .map_err(|e| e.to_string())?;
        ldap3::drive!(conn);
        ldap.simple_bind(ADMIN_DN, ADMIN_PW)
            .await
            .and_then(|r| r.success())
            .map_err(|e| e.to_string())?;
        Ok(ldap)
    }

    async fn load(&self) -> Result<(), String> {
        let mut ldap = self.admin().await?;
        let add = |dn: String, attrs: Vec<(&'static str, Vec<String>)>| {
            let attrs: Vec<(String, HashSet<String>)> = attrs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().collect()))
                .collect();
            (dn, attrs)
        };
        let mut entries = vec![
            add(
                BASE.into(),
                vec![
                    (
                        "objectClass",
                        vec!["dcObject".into(), "organization".into()],
                    ),
                    ("dc", vec!["example".into()]),
                    ("o", vec!["Example".into()]),
                ],
            ),
            add(
                READER_DN.replace("cn=reader,", ""),
                vec![
                    ("objectClass", vec!["organizationalUnit".into()]),
                    ("ou", vec!["services".into()]),
                ],
            ),
            add(
                READER_DN.into(),
                vec![
                    (
                        "objectClass",
                        vec!["organizationalRole".into(), "simpleSecurityObject".into()],
                    ),
                    ("cn", vec!["reader".into()]),
                    ("userPassword", vec![ssha(READER_PW)?]),
                ],
            ),
        ];
        for ou in ["people", "contractors", "groups"] {
            entries.push(add(
                format!("ou={ou},{BASE}"),
                vec![
                    ("objectClass", vec!["organizationalUnit".into()]),
                    ("ou", vec![ou.into()]),
                ],
            ));
        }
        for (uid, pw, name, mail, ou) in USERS {
            entries.push(add(
                format!("uid={},ou={ou},{BASE}", ldap3::dn_escape(*uid)),
                vec![
                    ("objectClass", vec!["inetOrgPerson".into()]),
                    ("uid", vec![uid.to_string()]),
                    ("cn", vec![name.to_string()]),
                    (
                        "sn",
                        vec![name.rsplit(' ').next().unwrap_or(name).to_string()],
                    ),
                    ("displayName", vec![name.to_string()]),
                    ("mail", vec![mail.to_string()]),
                    ("userPassword", vec![ssha(pw)?]),
                ],
            ));
        }
        for (cn, members) in GROUP_MEMBERS {
            entries.push(add(
                format!("cn={cn},{GROUPS}"),
                vec![
                    ("objectClass", vec!["groupOfNames".into()]),
                    ("cn", vec![cn.to_string()]),
                    (
                        "member",
                        members
                            .iter()
                            .map(|u| format!("uid={},{PEOPLE}", ldap3::dn_escape(*u)))
                            .collect(),
                    ),
                ],
            ));
        }
        for (dn, attrs) in entries {
            ldap.add(&dn, attrs)
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("add {dn}: {e}"))?;
        }
        let _ = ldap.unbind().await;
        Ok(())
    }

    /// Changes a user's password as the admin.
    pub async fn set_password(&self, uid: &str, password: &str) -> Result<(), String> {
        let mut ldap = self.admin().await?;
        let dn = format!("uid={},{PEOPLE}", ldap3::dn_escape(uid));
        let hash = ssha(password)?;
        ldap.modify(
            &dn,
            vec![Mod::Replace("userPassword", HashSet::from([hash.as_str()]))],
        )
        .await
        .and_then(|r| r.success())
        .map_err(|e| e.to_string())?;
        let _ = ldap.unbind().await;
        Ok(())
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sbin(name: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(name);
    if p.exists() { p } else { PathBuf::from(name) }
}

fn find_slapd() -> Option<PathBuf> {
    let p = sbin("slapd");
    if p.is_absolute() {
        return Some(p);
    }
    Command::new("slapd")
        .arg("-VV")
        .output()
        .ok()
        .map(|_| PathBuf::from("slapd"))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `{SSHA}` hash made by OpenLDAP's own `slappasswd`.
fn ssha(password: &str) -> Result<String, String> {
    Ok(
        run(Command::new(sbin("slappasswd")).args(["-h", "{SSHA}", "-s", password]))?
            .trim()
            .to_string(),
    )
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` CLI.
fn make_certs(dir: &Path) -> Result<(), String> {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]))?;
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]))?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("server.pem"),
        "-days",
        "2",
        "-extfile",
        &p("server.ext"),
    ]))?;
    Ok(())
}

fn config_ldif(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcTLSCACertificateFile: {d}/ca.pem
olcTLSCertificateFile: {d}/server.pem
olcTLSCertificateKeyFile: {d}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PW}
olcDbDirectory: {d}/db
olcDbMaxSize: 33554432
olcAccess: {{0}}to attrs=userPassword by anonymous auth by self write by * none
olcAccess: {{1}}to * by users read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
"
    )
}
