/** The redirect policy of the downloader: no https -> http downgrade, http(s) only, relative locations resolved. */
import { redirectTarget } from '../../src/data/download/http';
import { GnnError } from '../../src/errors';

function refused(from: string, location: string): GnnError {
  try {
    redirectTarget(new URL(from), location);
  } catch (e) {
    expect(e).toBeInstanceOf(GnnError);
    return e as GnnError;
  }
  throw new Error(`expected ${from} -> ${location} to be refused`);
}

describe('redirectTarget', () => {
  it('follows same-scheme and upgrading redirects, relative ones resolved against the current URL', () => {
    expect(redirectTarget(new URL('https://a.example/files/1'), 'https://b.example/s?x=1').href).toBe('https://b.example/s?x=1');
    expect(redirectTarget(new URL('https://a.example/files/1'), '/storage/f').href).toBe('https://a.example/storage/f');
    expect(redirectTarget(new URL('http://127.0.0.1:9/a'), 'https://b.example/').href).toBe('https://b.example/');
    expect(redirectTarget(new URL('http://127.0.0.1:9/a'), 'http://127.0.0.1:9/b').href).toBe('http://127.0.0.1:9/b');
  });

  it('refuses https -> http, other schemes and unparsable locations with ERR_GNN_DOWNLOAD_REDIRECT naming both URLs', () => {
    const e = refused('https://ndownloader.figshare.com/files/3195389', 'http://evil.example/x');
    expect(e.code).toBe('ERR_GNN_DOWNLOAD_REDIRECT');
    expect(e.message).toContain('https://ndownloader.figshare.com/files/3195389');
    expect(e.message).toContain('http://evil.example/x');
    for (const location of ['file:///etc/passwd', 'ftp://a.example/f', 'http://[bad']) expect(refused('http://a.example/', location).code).toBe('ERR_GNN_DOWNLOAD_REDIRECT');
    // A scheme-relative location keeps the current scheme.
    expect(redirectTarget(new URL('https://a.example/'), '//b.example/x').href).toBe('https://b.example/x');
  });
});
