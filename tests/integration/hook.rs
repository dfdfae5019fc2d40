//! A real HTTP/1.1 server on a local port for the alert tests: it records every request and
//! answers as the test says (a status and headers, or nothing at all).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    /// Names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The status answered (`None`: no answer).
    pub(crate) answered: Option<u16>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Status(u16, Vec<(&'static str, String)>),
    /// Read the request and never answer (a receiver that hangs).
    Hang,
}

type Script = Box<dyn FnMut(&Request, usize) -> Reply + Send>;

pub(crate) struct Hook {
    pub(crate) url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<Script>>,
}

impl Hook {
    /// A server answering each request with `script(request, how many came before)`.
    pub(crate) fn start(script: impl FnMut(&Request, usize) -> Reply + Send + 'static) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Arc<Mutex<Script>> = Arc::new(Mutex::new(Box::new(script)));
        let (r, s) = (requests.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || serve(stream, &r, &s));
            }
        });
        Hook { url, requests, script }
    }

    /// Answers from now on with `script`.
    pub(crate) fn answer(&self, script: impl FnMut(&Request, usize) -> Reply + Send + 'static) {
        *self.script.lock().unwrap() = Box::new(script);
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves the requests of one connection (keep-alive) until the client closes it.
fn serve(stream: TcpStream, requests: &Mutex<Vec<Request>>, script: &Mutex<Script>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut request = Request { path, headers, body, answered: None };
        let before = requests.lock().unwrap().len();
        let reply = (script.lock().unwrap())(&request, before);
        match reply {
            Reply::Hang => {
                requests.lock().unwrap().push(request);
                // Until the client goes away.
                let _ = reader.read_to_end(&mut Vec::new());
                return;
            }
            Reply::Status(status, extra) => {
                request.answered = Some(status);
                requests.lock().unwrap().push(request);
                let body = if (200..300).contains(&status) { "ok" } else { "no" };
                let mut response = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (n, v) in extra {
                    response.push_str(&format!("{n}: {v}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(body);
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}
