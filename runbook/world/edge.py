"""The edge: the site's CloudFront distribution and the Route 53 zone with the API's and site's records."""

from __future__ import annotations

from typing import Any

from .context import Distribution, World


class Edge:
    """CloudFront and Route 53."""

    def __init__(self, world: World) -> None:
        self.world = world

    def seed_cdn(self) -> None:
        w = self.world
        bucket = w.website_bucket()
        cf = w.client("cloudfront")
        for key, comment in w.names("cloudfront_distribution"):
            origin = f"{bucket or comment}.s3.{w.env.region}.amazonaws.com"
            config: dict[str, Any] = {
                "CallerReference": f"{w.env.name}-{key}",
                "Comment": comment,
                "Enabled": True,
                "DefaultRootObject": "index.html",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "website-s3",
                            "DomainName": origin,
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "website-s3",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",  # Managed-CachingOptimized
                    "Compress": True,
                },
                "PriceClass": "PriceClass_100",
            }
            site_host = w.env.values.get("website_host") or w.env.values.get("site_host")
            if isinstance(site_host, str):
                config["Aliases"] = {"Quantity": 1, "Items": [site_host]}
            dist = cf.create_distribution(DistributionConfig=config)["Distribution"]
            w.deployed[f"{key}.id"] = dist["Id"]
            if w.distribution is None:
                w.distribution = Distribution(arn=dist["ARN"], domain=dist["DomainName"])

    def seed_dns(self) -> None:
        """The zone of api_host, with the API's record (and the site's, when one is known)."""
        w = self.world
        api_host = w.env.values.get("api_host")
        if not isinstance(api_host, str) or "." not in api_host:
            return
        zone = api_host.split(".")[-2:]
        zone_name = ".".join(zone)
        r53 = w.client("route53")
        zone_id = r53.create_hosted_zone(
            Name=zone_name,
            CallerReference=f"{w.env.name}-{zone_name}",
            HostedZoneConfig={"Comment": w.prefix, "PrivateZone": False},
        )["HostedZone"]["Id"]
        changes = []
        if w.api_domain_target:
            target, hosted_zone = w.api_domain_target
            changes.append((api_host, target, hosted_zone))
        site_host = w.env.values.get("website_host") or w.env.values.get("site_host")
        if isinstance(site_host, str) and w.distribution is not None:
            changes.append((site_host, w.distribution.domain, "Z2FDTNDATAQYW2"))  # CloudFront's zone
        if changes:
            r53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={
                    "Changes": [
                        {
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": name,
                                "Type": "A",
                                "AliasTarget": {"HostedZoneId": hz, "DNSName": target, "EvaluateTargetHealth": False},
                            },
                        }
                        for name, target, hz in changes
                    ]
                },
            )
