"""EC2 ModifyVpcEndpoint on a gateway endpoint: the front adds the prefix-list route to route
tables added to the endpoint and removes it from tables taken away, as EC2 does (moto alone does
neither, so DeleteVpcEndpoints then fails with InvalidRoute.NotFound)."""

from conftest import uniq


def _s3_routes(ec2, rt, endpoint):
    table = ec2.describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
    return [r for r in table["Routes"]
            if r.get("GatewayId") == endpoint and r.get("DestinationPrefixListId", "").startswith("pl-")]


def test_gateway_endpoint_routes_follow_its_route_tables(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": uniq("vpce")}]}])["Vpc"]["VpcId"]
    a, b = (ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2))
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                       VpcEndpointType="Gateway",
                                       RouteTableIds=[a])["VpcEndpoint"]["VpcEndpointId"]
    assert len(_s3_routes(ec2, a, endpoint)) == 1
    assert _s3_routes(ec2, b, endpoint) == []

    # Added: the route appears in the new table (once, even when asked twice).
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, AddRouteTableIds=[b])
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, AddRouteTableIds=[b])
    assert len(_s3_routes(ec2, b, endpoint)) == 1
    got = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]
    assert sorted(got["RouteTableIds"]) == sorted([a, b])

    # Removed: the route goes from the table taken away, stays in the other.
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint, RemoveRouteTableIds=[a])
    assert _s3_routes(ec2, a, endpoint) == []
    assert len(_s3_routes(ec2, b, endpoint)) == 1

    # Delete now succeeds and takes the remaining route with it.
    out = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    assert out.get("Unsuccessful", []) == []
    assert _s3_routes(ec2, b, endpoint) == []


def test_other_ec2_posts_still_reach_moto(ec2):
    # The front reads the body of every EC2 POST: a plain call must still arrive intact.
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "v" * 200}])
    tags = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]
    assert {"Key": "k", "Value": "v" * 200} in tags
