using System.Net.Http.Json;
using System.Net.Security;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Amber.Transport.Cluster;

/// <summary>
/// The cluster's shared store: etcd v3, spoken through the JSON gateway every etcd member serves
/// on its client port (/v3/kv/put, /v3/lease/grant, ...), over mutual TLS with this node's
/// certificate, the member's checked against the cluster's CA as an agent's is. Several members'
/// URLs may be given: a call goes to the one that answered last, and on to the next while none
/// answers. A member that answers with an error is believed, not retried elsewhere.
/// </summary>
public sealed class EtcdClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly IReadOnlyList<Uri> _members;
    private int _current;

    /// <param name="members">The etcd members' client URLs (https://ADDR:PORT).</param>
    /// <param name="identity">This node: the certificate it shows, and the CA the members' must lead to.</param>
    /// <param name="timeout">How long a call may wait for a member before the next is tried.</param>
    public EtcdClient(IReadOnlyList<Uri> members, NodeIdentity identity, TimeSpan timeout)
    {
        if (members.Count == 0)
            throw new ArgumentException("no etcd member given", nameof(members));
        _members = members;
        var tls = identity.ClientOptions();
        _http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = tls.ClientCertificates,
                LocalCertificateSelectionCallback = tls.LocalCertificateSelectionCallback,
                RemoteCertificateValidationCallback = tls.RemoteCertificateValidationCallback,
                CertificateRevocationCheckMode = tls.CertificateRevocationCheckMode,
            },
            ConnectTimeout = timeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        })
        { Timeout = timeout };
    }

    /// <summary>The members' URLs of a comma-separated list; null, and why, if one is not an https URL.</summary>
    public static IReadOnlyList<Uri>? ParseMembers(string list, out string? problem)
    {
        problem = null;
        var members = new List<Uri>();
        foreach (string part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.AbsolutePath != "/" || uri.Query.Length > 0)
            {
                problem = $"'{part}' is not an etcd member's client URL (https://ADDR:PORT; the cluster's members speak TLS only)";
                return null;
            }
            members.Add(uri);
        }
        if (members.Count == 0)
            problem = "no etcd member given";
        return members.Count == 0 ? null : members;
    }

    /// <summary>A lease of <paramref name="ttlSeconds"/>: what is put under it goes when it is neither kept alive nor renewed for that long.</summary>
    public long GrantLease(int ttlSeconds)
    {
        var granted = Call("/v3/lease/grant", new LeaseRequest { Ttl = ttlSeconds }, EtcdJson.Default.LeaseRequest, EtcdJson.Default.LeaseResponse);
        return granted.Id != 0 ? granted.Id : throw new EtcdException($"etcd granted no lease: {granted.Error}");
    }

    /// <summary>Renews <paramref name="lease"/>; the seconds it has from now, 0 if it had expired (and with it what was under it).</summary>
    public long KeepAlive(long lease) =>
        Call("/v3/lease/keepalive", new LeaseRequest { Id = lease }, EtcdJson.Default.LeaseRequest, EtcdJson.Default.KeepAliveResponse).Result?.Ttl ?? 0;

    /// <summary>The seconds <paramref name="lease"/> has left (0: expired, or never was) and those it was granted.</summary>
    public (long Left, long Granted) TimeToLive(long lease)
    {
        var answer = Call("/v3/lease/timetolive", new LeaseRequest { Id = lease }, EtcdJson.Default.LeaseRequest, EtcdJson.Default.LeaseResponse);
        return (Math.Max(0, answer.Ttl), answer.GrantedTtl);
    }

    /// <summary>Ends <paramref name="lease"/> now, and what is under it.</summary>
    public void Revoke(long lease) =>
        Call("/v3/lease/revoke", new LeaseRequest { Id = lease }, EtcdJson.Default.LeaseRequest, EtcdJson.Default.LeaseResponse);

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>, under <paramref name="lease"/> (0: none; it stays).</summary>
    public void Put(string key, string value, long lease = 0) =>
        Call("/v3/kv/put", new PutRequest { Key = Encoding.UTF8.GetBytes(key), Value = Encoding.UTF8.GetBytes(value), Lease = lease }, EtcdJson.Default.PutRequest, EtcdJson.Default.LeaseResponse);

    /// <summary>Every key that starts with <paramref name="prefix"/>, in key order.</summary>
    public IReadOnlyList<EtcdEntry> Range(string prefix)
    {
        var answer = Call("/v3/kv/range", PrefixRange(prefix), EtcdJson.Default.RangeRequest, EtcdJson.Default.RangeResponse);
        return [.. (answer.Kvs ?? []).Select(Entry)];
    }

    /// <summary>The keys that start with <paramref name="prefix"/>.</summary>
    private static RangeRequest PrefixRange(string prefix)
    {
        byte[] start = Encoding.UTF8.GetBytes(prefix);
        byte[] end = (byte[])start.Clone();
        end[^1]++; // the first key past the prefix (a prefix ends in '/', never in 0xff)
        return new RangeRequest { Key = start, RangeEnd = end };
    }

    /// <summary>The entry of <paramref name="key"/>, or null if there is none.</summary>
    public EtcdEntry? Get(string key)
    {
        var answer = Call("/v3/kv/range", new RangeRequest { Key = Encoding.UTF8.GetBytes(key) }, EtcdJson.Default.RangeRequest, EtcdJson.Default.RangeResponse);
        return answer.Kvs is [var kv, ..] ? Entry(kv) : null;
    }

    /// <summary>
    /// The leader of election <paramref name="election"/> (etcd's election API: the key under
    /// ELECTION/ with the lowest create revision, one per campaigner, each under its lease), or null if none leads.
    /// </summary>
    public EtcdEntry? Leader(string election)
    {
        try
        {
            var answer = Call("/v3/election/leader", new ElectionRequest { Name = Encoding.UTF8.GetBytes(election) }, EtcdJson.Default.ElectionRequest, EtcdJson.Default.LeaderResponse);
            return answer.Kv is { } kv ? Entry(kv) : null;
        }
        catch (EtcdException e) when (e.Message.EndsWith(NoLeader, StringComparison.Ordinal))
        {
            return null;
        }
    }

    /// <summary>
    /// Campaigns in election <paramref name="election"/> under <paramref name="lease"/> with
    /// <paramref name="value"/>: whether this lease leads it within <paramref name="wait"/>. Not: the
    /// campaign is called off (the gateway ends it, and etcd takes its key back), another leads.
    /// </summary>
    public bool Campaign(string election, string value, long lease, TimeSpan wait)
    {
        using var waited = new CancellationTokenSource(wait);
        try
        {
            Call("/v3/election/campaign", new ElectionRequest { Name = Encoding.UTF8.GetBytes(election), Value = Encoding.UTF8.GetBytes(value), Lease = lease },
                EtcdJson.Default.ElectionRequest, EtcdJson.Default.CampaignResponse, waited.Token);
            return true;
        }
        catch (OperationCanceledException) when (waited.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// Sets every key of <paramref name="puts"/>, all or none (one transaction), if and only if
    /// <paramref name="leader"/> leads election <paramref name="election"/> then (its key is still
    /// the one found leading, with the same create revision: no other can lead before it is gone),
    /// and none of <paramref name="absent"/> exists: whether it did.
    /// </summary>
    /// <param name="election">The election.</param>
    /// <param name="leader">The value its leader must have.</param>
    /// <param name="puts">What is set.</param>
    /// <param name="absent">Keys that must not exist then, too (none if null).</param>
    public bool PutAllIfLeads(string election, string leader, IReadOnlyList<(string Key, string Value)> puts, IReadOnlyList<string>? absent = null)
    {
        if (Leader(election) is not { } leading || leading.Value != leader)
            return false;
        var answer = Call("/v3/kv/txn", new TxnRequest
        {
            Compare = [new Compare { Target = "CREATE", Key = Encoding.UTF8.GetBytes(leading.Key), CreateRevision = leading.CreateRevision },
                .. (absent ?? []).Select(k => new Compare { Target = "CREATE", Key = Encoding.UTF8.GetBytes(k), CreateRevision = 0 })],
            Success = Puts(puts),
        }, EtcdJson.Default.TxnRequest, EtcdJson.Default.TxnResponse);
        return answer.Succeeded;
    }

    /// <summary>Sets every key of <paramref name="puts"/>, all or none (one transaction), if and only if <paramref name="key"/> holds <paramref name="value"/> then: whether it did.</summary>
    public bool PutAllIfValue(string key, string value, IReadOnlyList<(string Key, string Value)> puts)
    {
        var answer = Call("/v3/kv/txn", new TxnRequest
        {
            Compare = [new Compare { Target = "VALUE", Key = Encoding.UTF8.GetBytes(key), Value = Encoding.UTF8.GetBytes(value) }],
            Success = Puts(puts),
        }, EtcdJson.Default.TxnRequest, EtcdJson.Default.TxnResponse);
        return answer.Succeeded;
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/> if and only if it was last written at <paramref name="revision"/> (0: if it does not exist): whether it did.</summary>
    public bool PutIfRevision(string key, string value, long revision)
    {
        var answer = Call("/v3/kv/txn", new TxnRequest
        {
            Compare = [new Compare { Target = "MOD", Key = Encoding.UTF8.GetBytes(key), ModRevision = revision }],
            Success = Puts([(key, value)]),
        }, EtcdJson.Default.TxnRequest, EtcdJson.Default.TxnResponse);
        return answer.Succeeded;
    }

    /// <summary>
    /// Deletes <paramref name="keys"/> and every key under <paramref name="prefixes"/>, all or none (one
    /// transaction), if and only if each key of <paramref name="unchanged"/> was last written at its
    /// revision then (0: it does not exist): whether it did.
    /// </summary>
    public bool DeleteAllIfRevisions(IReadOnlyList<string> keys, IReadOnlyList<string> prefixes, IReadOnlyList<(string Key, long Revision)> unchanged)
    {
        var answer = Call("/v3/kv/txn", new TxnRequest
        {
            Compare = [.. unchanged.Select(u => new Compare { Target = "MOD", Key = Encoding.UTF8.GetBytes(u.Key), ModRevision = u.Revision })],
            Success = [.. keys.Select(k => new RequestOp { RequestDeleteRange = new RangeRequest { Key = Encoding.UTF8.GetBytes(k) } }),
                .. prefixes.Select(p => new RequestOp { RequestDeleteRange = PrefixRange(p) })],
        }, EtcdJson.Default.TxnRequest, EtcdJson.Default.TxnResponse);
        return answer.Succeeded;
    }

    private static List<RequestOp> Puts(IReadOnlyList<(string Key, string Value)> puts) =>
        [.. puts.Select(p => new RequestOp { RequestPut = new PutRequest { Key = Encoding.UTF8.GetBytes(p.Key), Value = Encoding.UTF8.GetBytes(p.Value) } })];

    /// <summary>Deletes <paramref name="key"/> (nothing if it is not there).</summary>
    public void Delete(string key) =>
        Call("/v3/kv/deleterange", new RangeRequest { Key = Encoding.UTF8.GetBytes(key) }, EtcdJson.Default.RangeRequest, EtcdJson.Default.RangeResponse);

    private static EtcdEntry Entry(KeyValue kv) =>
        new(Encoding.UTF8.GetString(kv.Key ?? []), Encoding.UTF8.GetString(kv.Value ?? []), kv.Lease, kv.ModRevision, kv.CreateRevision);

    /// <summary>What etcd says when an election has no leader (concurrency.ErrElectionNoLeader).</summary>
    private const string NoLeader = "election: no leader";

    /// <summary>One call of the gateway's, at the member that answered last, then at the others while none answers.</summary>
    /// <param name="path">The gateway's path of the call (/v3/kv/range).</param>
    /// <param name="request">What is sent, as JSON.</param>
    /// <param name="requestType">How it is written.</param>
    /// <param name="responseType">How the answer is read.</param>
    /// <param name="cancel">Ends the call (an <see cref="OperationCanceledException"/>), whichever member it is at.</param>
    private TResponse Call<TRequest, TResponse>(string path, TRequest request, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        CancellationToken cancel = default)
        where TResponse : EtcdAnswer
    {
        var unanswered = new List<string>();
        for (int tried = 0; tried < _members.Count; tried++)
        {
            int member = (_current + tried) % _members.Count;
            var uri = new Uri(_members[member], path);
            HttpResponseMessage response;
            try
            {
                response = _http.PostAsync(uri, JsonContent.Create(request, requestType), cancel).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException && !cancel.IsCancellationRequested)
            {
                unanswered.Add($"{_members[member].Authority} ({Why(e)})");
                continue;
            }
            _current = member;
            using (response)
            {
                string body = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                TResponse? answer;
                try
                {
                    answer = JsonSerializer.Deserialize(body, responseType);
                }
                catch (JsonException)
                {
                    answer = null;
                }
                if (!response.IsSuccessStatusCode || answer is null || answer.Error is not null)
                    throw new EtcdException($"etcd at {_members[member].Authority} refused {path}: {answer?.Message ?? answer?.Error ?? $"HTTP {(int)response.StatusCode}"}");
                return answer;
            }
        }
        throw new EtcdException($"no etcd member answered: {string.Join(", ", unanswered)}");
    }

    /// <summary>The innermost reason, on one line (a refused certificate, a refused connection).</summary>
    private static string Why(Exception e)
    {
        if (e is TaskCanceledException)
            return "no answer in time";
        while (e.InnerException is not null)
            e = e.InnerException;
        return e.Message.ReplaceLineEndings(" ");
    }

    /// <inheritdoc/>
    public void Dispose() => _http.Dispose();
}

/// <summary>A key of the store, its value, the lease it is under (0: none), and the revisions that last changed it and made it.</summary>
public sealed record EtcdEntry(string Key, string Value, long Lease, long ModRevision, long CreateRevision);

/// <summary>The store could not be reached, or refused a call: the message says which member, and why.</summary>
public sealed class EtcdException(string message) : IOException(message);

/// <summary>What every answer of the gateway may hold: an error (gRPC's status, as JSON).</summary>
internal abstract class EtcdAnswer
{
    [JsonPropertyName("error")]
    public string? Error { get; set; }

    [JsonPropertyName("message")]
    public string? Message { get; set; }
}

internal sealed class LeaseRequest
{
    [JsonPropertyName("TTL")]
    public long Ttl { get; set; }

    [JsonPropertyName("ID")]
    public long Id { get; set; }
}

internal sealed class LeaseResponse : EtcdAnswer
{
    [JsonPropertyName("ID")]
    public long Id { get; set; }

    [JsonPropertyName("TTL")]
    public long Ttl { get; set; }

    [JsonPropertyName("grantedTTL")]
    public long GrantedTtl { get; set; }
}

internal sealed class KeepAliveResponse : EtcdAnswer
{
    [JsonPropertyName("result")]
    public LeaseResponse? Result { get; set; }
}

internal sealed class PutRequest
{
    [JsonPropertyName("key")]
    public byte[] Key { get; set; } = [];

    [JsonPropertyName("value")]
    public byte[] Value { get; set; } = [];

    [JsonPropertyName("lease")]
    public long Lease { get; set; }
}

internal sealed class RangeRequest
{
    [JsonPropertyName("key")]
    public byte[] Key { get; set; } = [];

    [JsonPropertyName("range_end")]
    public byte[] RangeEnd { get; set; } = [];
}

internal sealed class RangeResponse : EtcdAnswer
{
    [JsonPropertyName("kvs")]
    public List<KeyValue>? Kvs { get; set; }
}

internal sealed class KeyValue
{
    [JsonPropertyName("key")]
    public byte[]? Key { get; set; }

    [JsonPropertyName("value")]
    public byte[]? Value { get; set; }

    [JsonPropertyName("lease")]
    public long Lease { get; set; }

    [JsonPropertyName("mod_revision")]
    public long ModRevision { get; set; }

    [JsonPropertyName("create_revision")]
    public long CreateRevision { get; set; }
}

/// <summary>A request of the election API: campaign (name, value, lease) or leader (name).</summary>
internal sealed class ElectionRequest
{
    [JsonPropertyName("name")]
    public byte[] Name { get; set; } = [];

    [JsonPropertyName("value")]
    public byte[]? Value { get; set; }

    [JsonPropertyName("lease")]
    public long Lease { get; set; }
}

internal sealed class LeaderResponse : EtcdAnswer
{
    [JsonPropertyName("kv")]
    public KeyValue? Kv { get; set; }
}

internal sealed class CampaignResponse : EtcdAnswer;

internal sealed class TxnRequest
{
    [JsonPropertyName("compare")]
    public List<Compare> Compare { get; set; } = [];

    [JsonPropertyName("success")]
    public List<RequestOp> Success { get; set; } = [];

    [JsonPropertyName("failure")]
    public List<RequestOp> Failure { get; set; } = [];
}

/// <summary>One condition of a transaction: <see cref="Target"/> (CREATE, VALUE) of <see cref="Key"/> equal to the value given for it.</summary>
internal sealed class Compare
{
    [JsonPropertyName("target")]
    public string Target { get; set; } = "";

    [JsonPropertyName("key")]
    public byte[] Key { get; set; } = [];

    [JsonPropertyName("create_revision")]
    public long? CreateRevision { get; set; }

    [JsonPropertyName("mod_revision")]
    public long? ModRevision { get; set; }

    [JsonPropertyName("value")]
    public byte[]? Value { get; set; }
}

internal sealed class RequestOp
{
    [JsonPropertyName("request_put")]
    public PutRequest? RequestPut { get; set; }

    [JsonPropertyName("request_range")]
    public RangeRequest? RequestRange { get; set; }

    // (a DeleteRangeRequest: its key and range_end are a RangeRequest's)
    [JsonPropertyName("request_delete_range")]
    public RangeRequest? RequestDeleteRange { get; set; }
}

internal sealed class TxnResponse : EtcdAnswer
{
    [JsonPropertyName("succeeded")]
    public bool Succeeded { get; set; }

    [JsonPropertyName("responses")]
    public List<ResponseOp>? Responses { get; set; }
}

internal sealed class ResponseOp
{
    [JsonPropertyName("response_range")]
    public RangeResponse? ResponseRange { get; set; }
}

// The gateway writes 64-bit numbers as strings (JSON's numbers are doubles), and leaves out what is zero.
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.WriteAsString,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(LeaseRequest))]
[JsonSerializable(typeof(LeaseResponse))]
[JsonSerializable(typeof(KeepAliveResponse))]
[JsonSerializable(typeof(PutRequest))]
[JsonSerializable(typeof(RangeRequest))]
[JsonSerializable(typeof(RangeResponse))]
[JsonSerializable(typeof(TxnRequest))]
[JsonSerializable(typeof(TxnResponse))]
[JsonSerializable(typeof(ElectionRequest))]
[JsonSerializable(typeof(LeaderResponse))]
[JsonSerializable(typeof(CampaignResponse))]
internal sealed partial class EtcdJson : JsonSerializerContext;
